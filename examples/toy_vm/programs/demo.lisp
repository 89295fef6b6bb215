; demo.lisp: a short tour of the toy VM (run by the README's first command).
;   ./bazelw run //examples/toy_vm:tvm -- examples/toy_vm/programs/demo.lisp --stats

; Closures: a counter that keeps its state in its environment.
(define (make-counter)
  (let ((n 0))
    (lambda () (set! n (+ n 1)) n)))
(define tick (make-counter))
(tick) (tick)
(display "counter: ") (display (tick)) (newline)

; Lists and higher-order procedures.
(define (range a b) (if (>= a b) '() (cons a (range (+ a 1) b))))
(define squares (map (lambda (x) (* x x)) (range 1 11)))
(display "squares: ") (display squares) (newline)
(define (fold f acc xs) (if (null? xs) acc (fold f (f acc (car xs)) (cdr xs))))
(display "sum of squares: ") (display (fold + 0 squares)) (newline)
(display "reversed, appended: ") (display (append (reverse (range 0 3)) '(a b "c" 2.5))) (newline)

; Vectors.
(define v (make-vector 5 0))
(let loop ((i 0))
  (when (< i 5)
    (vector-set! v i (* i 10))
    (loop (+ i 1))))
(display "vector: ") (display v) (display ", length ") (display (vector-length v)) (newline)

; Proper tail calls: a million iterations in constant stack.
(define (count-up i n) (if (= i n) i (count-up (+ i 1) n)))
(display "tail loop: ") (display (count-up 0 1000000)) (newline)

; Strings, floats, cond.
(define (describe x)
  (cond ((string? x) (string-append "a string of length " (number->string (string-length x))))
        ((integer? x) "an integer")
        ((number? x) (string-append "a float, half is " (number->string (/ x 2))))
        (else "something else")))
(for-each (lambda (x) (display (describe x)) (newline)) (list "hello" 42 3.5 'sym))

; A thread that builds a list and exits: its pages are abandoned, but the
; list it returns stays live, and the collector still finds it there.
(define worker
  (spawn (lambda ()
           (let build ((i 0) (acc '()))
             (if (= i 1000) acc (build (+ i 1) (cons (vector i (* i i)) acc)))))))
(define from-thread (join worker))
(gc)
(gc)
(display "thread left ") (display (length from-thread)) (display " vectors; first ")
(display (car from-thread)) (display ", last ") (display (list-ref from-thread 999)) (newline)

; Garbage: a few hundred thousand short-lived pairs, then a collection.
(define (churn n) (if (> n 0) (begin (range 0 20) (churn (- n 1))) 'done))
(churn 20000)
(gc)
(display "after churn and (gc): ") (display (equal? (car from-thread) (vector 999 998001))) (newline)
(heap-stats)
