;; call/cc (stack copies in GC memory), dynamic-wind, exceptions, a
;; generator built from continuations, deep recursion (a VM stack that grows
;; and is marked by Guile's own mark procedure) and string ports.
(use-modules (ice-9 format))

;; A generator: each call resumes the walk over lst where it stopped.
(define (make-generator lst)
  (define resume #f)
  (define (next)
    (call/cc
     (lambda (return)
       (if resume
           (resume return)
           (begin
             (for-each (lambda (x)
                         (call/cc (lambda (k)
                                    (set! resume (lambda (r) (set! return r) (k #f)))
                                    (return x))))
                       lst)
             (return 'done))))))
  next)
(define g (make-generator (iota 2000)))
(let loop ((sum 0))
  (let ((x (g)))
    (if (eq? x 'done)
        (format #t "generator sum: ~a\n" sum)
        (loop (+ sum x)))))

(define trail '())
(dynamic-wind
  (lambda () (set! trail (cons 'in trail)))
  (lambda () (call/cc (lambda (k) (k 'escaped))))
  (lambda () (set! trail (cons 'out trail))))
(format #t "dynamic-wind: ~a\n" (reverse trail))

(define caught
  (let loop ((i 0) (n 0))
    (if (= i 3000)
        n
        (loop (+ i 1)
              (+ n (catch 'oops
                     (lambda () (if (odd? i) (throw 'oops (make-list 10 i)) 0))
                     (lambda (key . args) 1)))))))
(format #t "caught: ~a\n" caught)
(format #t "with-exception-handler: ~a\n"
        (with-exception-handler
         (lambda (e) (list 'handled e))
         (lambda () (raise-exception (make-list 3 'boom)))
         #:unwind? #t))

(define (deep n) (if (= n 0) '() (cons n (deep (- n 1)))))
(format #t "deep recursion: ~a\n" (length (deep 200000)))

(define (escape-many n)
  (let loop ((i 0) (acc 0))
    (if (= i n) acc
        (loop (+ i 1) (+ acc (call/cc (lambda (k) (for-each (lambda (x) (if (= x 5) (k x))) (iota 10)) 0)))))))
(format #t "escapes: ~a\n" (escape-many 20000))
