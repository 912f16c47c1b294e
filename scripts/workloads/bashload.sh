#!/usr/bin/env bash
# A bash workload with deterministic output: bash allocates its words,
# variables, arrays, hash tables and command trees with malloc, and every
# subshell and command substitution forks a copy of that heap.
#
# usage: bashload.sh [SCALE]
set -euo pipefail
scale=${1:-1}

# Associative arrays and string building
declare -A count
declare -a list
words=(alloc free span slab buddy page arena cache thread local remote list lock)
seed=1
rnd() { seed=$(((seed * 1103515245 + 12345) % 2147483648)); REPLY=$(((seed >> 8) % $1)); }
for ((i = 0; i < 20000 * scale; i++)); do
    rnd ${#words[@]}
    w=${words[REPLY]}
    count[$w]=$((${count[$w]:-0} + 1))
    list+=("$w-$i")
    if ((${#list[@]} > 500)); then
        list=("${list[@]:250}")
    fi
done
for k in $(printf '%s\n' "${!count[@]}" | sort); do
    printf '%s=%s ' "$k" "${count[$k]}"
done
echo
echo "list ${#list[@]} ${list[0]} ${list[-1]}"

# Parameter expansion on long strings
s=
for ((i = 0; i < 3000 * scale; i++)); do s+="x$i,"; done
t=${s//x/yy}
u=${t^^}
v=${u%%,Y*}
echo "strings ${#s} ${#t} ${#u} ${#v} $(printf '%s' "$u" | md5sum | cut -c1-16)"

# Subshells and command substitutions
total=0
for ((i = 0; i < 300 * scale; i++)); do
    r=$( (echo "$i" "${words[i % ${#words[@]}]}"; seq 1 $((i % 20))) | tr ' ' '\n' | wc -l)
    total=$((total + r))
done
echo "subshells $total"

# Recursion with local arrays
fib() {
    local -a frame=("$@" "n=$1" "${words[$1 % ${#words[@]}]}")
    if (($1 < 2)); then
        REPLY=$((${#frame[@]} - 3 + $1))
        return
    fi
    fib $(($1 - 1))
    local a=$REPLY
    fib $(($1 - 2))
    REPLY=$((a + REPLY))
}
fib $((14 + scale))
echo "fib $REPLY"

# Here-documents, read loops, pipelines
sum=0
while read -r a b c; do
    sum=$((sum + a * b + ${#c}))
done < <(for ((i = 0; i < 5000 * scale; i++)); do echo "$i $((i % 7)) ${words[i % 13]}"; done)
echo "readloop $sum"
cat <<EOF | sort | uniq -c | md5sum | cut -c1-16
$(for w in "${words[@]}" "${words[@]}"; do echo "$w"; done)
EOF
echo "done"
