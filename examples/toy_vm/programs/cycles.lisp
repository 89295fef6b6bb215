; cycles.lisp: cycle-heavy garbage (a mark-sweep collector has no trouble
; with cycles; reference counting would leak every one of these).

; A circular list of n elements.
(define (ring n)
  (let ((head (list 0)))
    (let loop ((i 1) (tail head))
      (if (= i n)
          (begin (set-cdr! tail head) head)
          (let ((cell (list i)))
            (set-cdr! tail cell)
            (loop (+ i 1) cell))))))

; A doubly linked ring of vectors: #(value prev next).
(define (dring n)
  (let ((first (vector 0 #f #f)))
    (vector-set! first 1 first)
    (vector-set! first 2 first)
    (let loop ((i 1) (last first))
      (if (= i n)
          first
          (let ((node (vector i last first)))
            (vector-set! last 2 node)
            (vector-set! first 1 node)
            (loop (+ i 1) node))))))

; Closures that refer to each other through their environment.
(define (mutual n)
  (letrec ((ping (lambda (k) (if (= k 0) 'ping (pong (- k 1)))))
           (pong (lambda (k) (if (= k 0) 'pong (ping (- k 1))))))
    (ping n)))

(define (sum-ring r n)
  (let loop ((i 0) (p r) (s 0)) (if (= i n) s (loop (+ i 1) (cdr p) (+ s (car p))))))
(define (sum-dring r n)
  (let loop ((i 0) (p r) (s 0)) (if (= i n) s (loop (+ i 1) (vector-ref p 2) (+ s (vector-ref p 0))))))
(define (sum-dring-back r n)
  (let loop ((i 0) (p (vector-ref r 1)) (s 0)) (if (= i n) s (loop (+ i 1) (vector-ref p 1) (+ s (vector-ref p 0))))))

; Keep a few cycles alive across everything below.
(define keep-ring (ring 1000))
(define keep-dring (dring 1000))
(define self (vector 'self #f))
(vector-set! self 1 self)

; Make and drop many cycles.
(let loop ((i 0) (acc 0))
  (if (< i 3000)
      (let ((r (ring 50)) (d (dring 50)))
        (loop (+ i 1) (+ acc (sum-ring r 50) (sum-dring d 50) (if (eq? (mutual 7) 'pong) 1 0))))
      (begin (display "dropped 6000 rings, checksum ") (display acc) (newline))))

(gc)
(gc)
(display "kept ring: ") (display (sum-ring keep-ring 1000))
(display ", twice round: ") (display (sum-ring keep-ring 2000)) (newline)
(display "kept doubly linked ring, forward ") (display (sum-dring keep-dring 1000))
(display ", backward ") (display (sum-dring-back keep-dring 1000)) (newline)
(display "self reference intact: ") (display (eq? (vector-ref self 1) self)) (newline)
