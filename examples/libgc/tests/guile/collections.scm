;; Thousands of collections, each followed by checks: a long-lived table of
;; strings, closures, vectors and lists (one entry replaced per round) must
;; come through every collection intact; keys dropped from a weak-key table
;; must go; objects dropped after a guardian saw them must come back from it.
;; The counts that depend on what a conservative stack scan happens to keep
;; are checked against bounds, not printed, so the output is the same on any
;; collector that keeps its promises.
(use-modules (srfi srfi-1))

(define rounds 3000)
(define size 1000)
(define (make-entry k)
  (list k (number->string k) (lambda () (* k 3)) (make-vector 4 k) (iota 8 k)))
(define (entry-ok? e k)
  (and (= (car e) k)
       (string=? (cadr e) (number->string k))
       (= ((caddr e)) (* k 3))
       (equal? (cadddr e) (make-vector 4 k))
       (equal? (list-ref e 4) (iota 8 k))))
(define table (make-vector size #f))
(do ((i 0 (+ i 1))) ((= i size)) (vector-set! table i (make-entry i)))
;; Entry i of the table was last written in round r for the largest r < round
;; with r mod size = i, as key (+ size r); never written: key i.
(define (expected-key i round)
  (let ((last (- round 1 (modulo (- round 1 i) size))))
    (if (< last 0) i (+ size last))))
(define (table-ok? round)
  (let loop ((i 0))
    (or (= i size)
        (and (entry-ok? (vector-ref table i) (expected-key i round)) (loop (+ i 1))))))

(define weak (make-weak-key-hash-table))
(define guardian (make-guardian))
(define bad-rounds 0)
(define returned 0)

(do ((round 0 (+ round 1))) ((= round rounds))
  (vector-set! table (modulo round size) (make-entry (+ size round)))
  (hash-set! weak (list 'key round) round)  ; nothing else holds the key
  (guardian (make-string 16 #\g))           ; nor this string
  (gc)
  (let drain () (when (guardian) (set! returned (+ returned 1)) (drain)))
  (when (and (= (modulo round 100) 99) (not (table-ok? (+ round 1))))
    (set! bad-rounds (+ bad-rounds 1))))

(format #t "rounds: ~a\n" rounds)
(format #t "table intact after every 100th collection: ~a\n" (= bad-rounds 0))
(format #t "table intact at the end: ~a\n" (table-ok? rounds))
;; A few may still be held by a stale stack word; most must be gone.
(define weak-left (hash-fold (lambda (k v n) (+ n 1)) 0 weak))
(format #t "weak keys dropped: ~a\n" (< weak-left (quotient rounds 10)))
(format #t "guarded strings returned: ~a\n" (> returned (- rounds (quotient rounds 10))))
