;; Closures, strings, lists, vectors and sorting: the plain allocation paths
;; (pairs and closures from Guile's inline freelists, strings and vectors
;; from GC_malloc and GC_malloc_atomic), with enough garbage to collect often.
(use-modules (srfi srfi-1) (ice-9 format))

(define (make-counter start)
  (let ((n start))
    (lambda () (set! n (+ n 1)) n)))

(define counters (map make-counter (iota 100)))
(define total 0)
(do ((round 0 (+ round 1))) ((= round 200))
  (for-each (lambda (c) (set! total (+ total (c)))) counters))
(format #t "counters: ~a\n" total)

(define (compose . fs)
  (if (null? fs) identity (lambda (x) ((car fs) ((apply compose (cdr fs)) x)))))
(define add-all (apply compose (map (lambda (i) (lambda (x) (+ x i))) (iota 50))))
(format #t "composed: ~a\n" (add-all 0))

(define (make-tree d)
  (if (= d 0) '() (cons (make-tree (- d 1)) (make-tree (- d 1)))))
(define (count-tree t) (if (null? t) 1 (+ (count-tree (car t)) (count-tree (cdr t)))))
(define long-lived (make-tree 14))
(let loop ((i 0) (acc 0))
  (if (< i 150)
      (loop (+ i 1) (+ acc (count-tree (make-tree 12))))
      (format #t "trees: ~a, long-lived still ~a\n" acc (count-tree long-lived))))

(define words
  (map (lambda (i) (string-append "w" (number->string (* i 7919) 36) "-" (make-string (modulo i 13) #\x)))
       (iota 20000)))
(format #t "strings: ~a ~a ~a\n" (length words) (string-length (apply string-append words)) (list-ref words 12345))
(define sorted (sort words string<?))
(format #t "sorted: ~a .. ~a\n" (car sorted) (last sorted))

(define v (make-vector 50000 #f))
(do ((i 0 (+ i 1))) ((= i 50000)) (vector-set! v i (list i (number->string i) (make-vector 3 i))))
(format #t "vector: ~a\n" (vector-ref v 49999))
(define port-text
  (call-with-output-string
    (lambda (p) (do ((i 0 (+ i 1))) ((= i 5000)) (format p "line ~a ~a\n" i (make-string 10 #\z))))))
(format #t "string port: ~a chars, ~a lines\n" (string-length port-text)
        (length (string-split port-text #\newline)))
(format #t "fold: ~a\n" (fold + 0 (map (lambda (x) (* x x)) (iota 100000))))
