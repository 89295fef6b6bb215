; threads.lisp: threads that exit while objects they allocated stay live.
;
; Each worker builds a structure (pairs, vectors, strings, floats, closures)
; and exits. Some hand it back through join; others store it into a shared
; vector and are never joined by name. Their pages are abandoned when they
; exit; the collector must still find the objects there, after many
; collections and while later threads reclaim those pages.

(define workers 6)
(define shared (make-vector workers '()))

; A structure whose checksum we can recompute: a list of n entries.
(define (build id n)
  (let loop ((i 0) (acc '()))
    (if (= i n)
        acc
        (loop (+ i 1)
              (cons (vector i (* 1.5 i) (string-append "item-" (number->string id) "-" (number->string i))
                            (let ((k (+ id i))) (lambda () k)))
                    acc)))))

(define (checksum lst)
  (let loop ((l lst) (sum 0))
    (if (null? l)
        sum
        (let ((e (car l)))
          (loop (cdr l)
                (+ sum (vector-ref e 0) (exact (floor (vector-ref e 1)))
                   (string-length (vector-ref e 2)) ((vector-ref e 3))))))))

(define (churn rounds)
  (let loop ((i 0))
    (when (< i rounds)
      (make-vector 64 (list i i i))
      (loop (+ i 1)))))

; Round 1: workers return their structures through join.
(define threads
  (map (lambda (id) (spawn (lambda () (churn 2000) (build id 500))))
       '(0 1 2 3 4 5)))
(define results (map join threads))
(set! threads '())  ; the thread objects may die; the results must not

; Round 2: workers leave their structures in a shared vector and exit.
(define (store id) (lambda () (churn 1000) (vector-set! shared id (build (+ id 100) 300)) 'stored))
(for-each join (map (lambda (id) (spawn (store id))) '(0 1 2 3 4 5)))

; Many collections, with more short-lived threads reclaiming the abandoned
; pages in between.
(let loop ((i 0))
  (when (< i 20)
    (join (spawn (lambda () (churn 500) (build 999 50))))
    (churn 200)
    (gc)
    (loop (+ i 1))))

(display "joined results: ")
(display (map checksum results))
(newline)
(display "shared results: ")
(display (map checksum (vector->list shared)))
(newline)
(display "a sample: ")
(display (vector-ref (car (vector-ref shared 3)) 2))
(display " ")
(display ((vector-ref (car (list-ref results 2)) 3)))
(newline)
(display (if (>= (gc-count) 20) "collections: at least 20" "collections: too few"))
(newline)

; A thread that fails: the error is reported and join raises it again.
(define bad (spawn (lambda () (car 'oops))))
(display "errors in threads are caught")
(newline)
