; weak-cache.lisp: a cache of computed results keyed by the objects they
; describe, kept in a weak table (an ephemeron table): an entry lives as
; long as its key does, so once the program drops the keys the cache
; empties under memory pressure, with no eviction code. A weak box and a
; finalizer watch one of the keys go.

(define cache (make-weak-table))
(define computed 0)

; The "expensive" computation: the sum of a key's numbers.
(define (describe key)
  (set! computed (+ computed 1))
  (let loop ((v key) (sum 0))
    (if (pair? v) (loop (cdr v) (+ sum (car v))) sum)))

(define (cached-describe key)
  (let ((hit (table-ref cache key #f)))
    (or hit
        (let ((v (describe key)))
          (table-set! cache key v)
          v))))

(define (make-keys n)
  (let loop ((i 0) (acc '()))
    (if (= i n) acc (loop (+ i 1) (cons (list i (+ i 1) (+ i 2)) acc)))))

(define keys (make-keys 1000))
(for-each cached-describe keys)
(for-each cached-describe keys)   ; all hits now
(display "entries while the keys are in use: ") (display (table-count cache)) (newline)
(display "computed: ") (display computed) (display " times for 2000 lookups") (newline)
(display "(cached-describe (car keys)): ") (display (cached-describe (car keys))) (newline)

(define watched (make-weak-box (car keys)))
(register-finalizer! (car keys)
  (lambda (key) (display "finalizer: the key ") (display key) (display " is unreachable") (newline)))

; Drop the keys, then keep allocating data that stays live (memory
; pressure): the collections that follow, full ones too in generational
; mode, take the dead keys and their entries with them.
(set! keys '())
(define ballast '())
(define (pressure i)
  (cond ((= (table-count cache) 0) i)
        ((= i 3000000) i)
        (else (set! ballast (cons (make-vector 4 i) ballast))
              (pressure (+ i 1)))))
(define steps (pressure 0))
(set! ballast '())
(display "entries after memory pressure: ") (display (table-count cache)) (newline)
(display "emptied without an explicit collection: ") (display (< steps 3000000)) (newline)
(display "the weak box now holds: ") (display (weak-box-value watched)) (newline)
