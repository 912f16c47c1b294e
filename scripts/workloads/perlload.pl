#!/usr/bin/perl
# An allocation-heavy Perl workload with deterministic output: big hashes,
# regex scans and substitutions, sorting, string growth, nested data
# structures and their teardown. Perl allocates every SV, string buffer
# and hash bucket array with malloc.
#
# usage: perlload.pl [SCALE]
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);
use Data::Dumper;
use List::Util qw(sum max);

$Data::Dumper::Sortkeys = 1;
$Data::Dumper::Indent   = 1;

my $scale = shift // 1;

# A small deterministic generator (Perl's rand() differs between builds).
# A 31-bit LCG: every intermediate value fits in a 64-bit integer.
my $state = 12345;
sub rnd {
    my ($n) = @_;
    $state = ($state * 1103515245 + 12345) % 2147483648;
    return ($state >> 8) % $n;
}

my @words = qw(alloc free span slab buddy page arena cache thread local remote
  list lock atomic size class bin chunk block header footer merge split order
  bitmap region segment pool map unmap grow shrink align guard);

sub sentence {
    my $n = 3 + rnd(12);
    return join ' ', map { $words[ rnd(scalar @words) ] } 1 .. $n;
}

# 1. word frequencies and n-grams in a big hash
my %freq;
my %bigram;
my @lines;
for my $i (1 .. 40000 * $scale) {
    my $s = sentence();
    push @lines, "$i: $s";
    my @w = split / /, $s;
    $freq{$_}++ for @w;
    $bigram{"$w[$_] $w[$_+1]"}++ for 0 .. $#w - 1;
}
my @top = (sort { $bigram{$b} <=> $bigram{$a} || $a cmp $b } keys %bigram)[0 .. 19];
@top = grep { defined } @top;
print "bigrams ", scalar(keys %bigram), " top ", md5_hex(join ',', map { "$_=$bigram{$_}" } @top), "\n";
print "freq ", md5_hex(join ',', map { "$_=$freq{$_}" } sort keys %freq), "\n";

# 2. regex: captures, global matches, substitutions with code
my $text = join "\n", @lines;
my $count = () = $text =~ /\b(s\w+)\s+(\w+)/g;
(my $t2 = $text) =~ s/(\d+): (\w+)/$2-@{[ $1 * 3 ]}/g;
$t2 =~ s/\b(\w)(\w*)\b/\u$1$2/g;
my %lens;
while ($text =~ /^(\d+): ((?:\w+ ?){5,})$/mg) { $lens{ length $2 }++ }
print "regex $count ", length($t2), " ", md5_hex($t2), " ", scalar(keys %lens), "\n";

# 3. sorting: numeric, string, Schwartzian transform
my @nums = map { rnd(1_000_000) * 1000 + rnd(1000) - 500_000_000 } 1 .. 100000 * $scale;
my @sn = sort { $a <=> $b } @nums;
my @ss = sort @lines;
my @st = map { $_->[1] } sort { $a->[0] <=> $b->[0] or $a->[1] cmp $b->[1] }
  map { [ length($_), $_ ] } @lines;
print "sort $sn[0] $sn[-1] ", md5_hex(join ',', @sn[ map { $_ * 100 } 0 .. 99 ]), " ",
  md5_hex($ss[0] . $ss[-1] . $st[0] . $st[-1]), "\n";

# 4. nested structures, built and dropped in waves
my $total = 0;
for my $wave (1 .. 8 * $scale) {
    my %tree;
    for my $i (1 .. 5000) {
        my $k = $words[ rnd(scalar @words) ];
        push @{ $tree{$k}{list} }, { id => $i, name => sentence(), tags => [ map { rnd(100) } 1 .. rnd(10) ] };
        $tree{$k}{count}++;
    }
    my $dump = Dumper(\%tree);
    $total += length $dump;
    delete $tree{$_} for grep { $tree{$_}{count} % 2 } keys %tree;
}
print "waves $total\n";

# 5. string growth and splitting
my $big = '';
$big .= sprintf("%08x|%s\n", $_ * 2654435761 % 4294967296, sentence()) for 1 .. 50000 * $scale;
my @parts = split /\|/, $big;
my $joined = join '#', reverse @parts;
print "strings ", length($big), " ", scalar(@parts), " ", md5_hex($joined), "\n";
print "done\n";
