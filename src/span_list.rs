//! L5: an intrusive doubly linked list of spans (a heap's class queues and its full list),
//! linked through [`Span::links`].

use crate::span::Span;
use core::ptr;

/// A doubly linked list of spans.
///
/// Invariant: `len` spans are reachable from `head` through `next` links, the last one is
/// `tail`, and each one's `prev` is the one before it (null for `head`).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct SpanList {
    /// First span, or null.
    head: *mut Span,
    /// Last span, or null.
    tail: *mut Span,
    /// Number of spans on the list.
    len: u32,
}

impl SpanList {
    /// An empty list.
    pub const EMPTY: SpanList = SpanList {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        len: 0,
    };

    /// First span, or null.
    #[inline]
    pub fn head(&self) -> *mut Span {
        self.head
    }

    /// Number of spans.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the list is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// # Safety
    /// `s` is a valid span on no list; the caller owns both.
    pub unsafe fn push_back(&mut self, s: *mut Span) {
        // SAFETY: forwarded contract.
        unsafe {
            *(*s).links() = crate::span::Links {
                next: ptr::null_mut(),
                prev: self.tail,
            };
            if self.tail.is_null() {
                self.head = s;
            } else {
                (*self.tail).links().next = s;
            }
        }
        self.tail = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is a valid span on no list; the caller owns both.
    pub unsafe fn push_front(&mut self, s: *mut Span) {
        // SAFETY: forwarded contract.
        unsafe {
            *(*s).links() = crate::span::Links {
                next: self.head,
                prev: ptr::null_mut(),
            };
            if self.head.is_null() {
                self.tail = s;
            } else {
                (*self.head).links().prev = s;
            }
        }
        self.head = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is on this list; the caller owns both.
    pub unsafe fn remove(&mut self, s: *mut Span) {
        // SAFETY: forwarded contract.
        unsafe {
            let crate::span::Links { next: n, prev: p } = *(*s).links();
            if p.is_null() {
                self.head = n;
            } else {
                (*p).links().next = n;
            }
            if n.is_null() {
                self.tail = p;
            } else {
                (*n).links().prev = p;
            }
            *(*s).links() = crate::span::Links {
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
            };
        }
        self.len -= 1;
    }

    /// Take the first span off the list, or null.
    ///
    /// # Safety
    /// The caller owns the list and its spans.
    pub unsafe fn pop_front(&mut self) -> *mut Span {
        let s = self.head;
        if !s.is_null() {
            // SAFETY: s is on this list.
            unsafe { self.remove(s) };
        }
        s
    }

    /// Verify the invariant on the type, calling `f` on every span. Aborts on violation.
    ///
    /// # Safety
    /// The caller owns the list and its spans.
    pub unsafe fn check(&self, mut f: impl FnMut(&Span)) {
        let (mut s, mut prev, mut n) = (self.head, ptr::null_mut(), 0u32);
        while !s.is_null() {
            // SAFETY: spans on the list are valid (contract).
            let span = unsafe { &mut *s };
            xa_check!(span.links().prev == prev);
            f(span);
            n += 1;
            prev = s;
            s = span.next();
        }
        xa_check!(prev == self.tail && n == self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_remove_pop() {
        let mut spans: Vec<Span> = (0..4).map(|_| Span::empty()).collect();
        let p: Vec<*mut Span> = spans.iter_mut().map(|s| s as *mut Span).collect();
        let mut l = SpanList::EMPTY;
        // SAFETY: the spans outlive the list and are on no other list.
        unsafe {
            l.push_back(p[1]);
            l.push_front(p[0]);
            l.push_back(p[2]);
            l.push_back(p[3]);
            l.check(|_| {});
            assert_eq!(l.len(), 4);
            l.remove(p[2]);
            l.check(|_| {});
            let mut order = Vec::new();
            l.check(|s| order.push(s as *const Span));
            assert_eq!(order, [p[0] as *const Span, p[1], p[3]]);
            assert_eq!(l.pop_front(), p[0]);
            l.remove(p[3]);
            assert_eq!(l.pop_front(), p[1]);
            assert!(l.is_empty() && l.head().is_null());
            l.check(|_| {});
        }
    }
}
