; binary-trees.lisp: the Benchmarks Game's binary-trees, in the toy Lisp.
;   tvm binary-trees.lisp [max-depth]      (default 14)
; Allocates many short-lived trees and one long-lived one: a collector test.
; test-args: 10

(define (make-tree d)
  (if (= d 0)
      (cons '() '())
      (cons (make-tree (- d 1)) (make-tree (- d 1)))))

(define (check tree)
  (if (null? (car tree))
      1
      (+ 1 (check (car tree)) (check (cdr tree)))))

(define (pow2 n) (if (= n 0) 1 (* 2 (pow2 (- n 1)))))

(define args (command-line-args))
(define min-depth 4)
(define max-depth (max (+ min-depth 2) (if (pair? args) (string->number (car args)) 14)))

(define (report-line . parts) (for-each display parts) (newline))

(let ((stretch (+ max-depth 1)))
  (report-line "stretch tree of depth " stretch "\t check: " (check (make-tree stretch))))

(define long-lived (make-tree max-depth))

(define (run-depth d)
  (let ((iterations (pow2 (+ (- max-depth d) min-depth))))
    (let loop ((i 0) (sum 0))
      (if (= i iterations)
          (report-line iterations "\t trees of depth " d "\t check: " sum)
          (loop (+ i 1) (+ sum (check (make-tree d))))))))

(let loop ((d min-depth))
  (when (<= d max-depth)
    (run-depth d)
    (loop (+ d 2))))

(report-line "long lived tree of depth " max-depth "\t check: " (check long-lived))
