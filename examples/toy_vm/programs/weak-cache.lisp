; weak-cache.lisp: a cache of computed results keyed by the objects they
; describe, kept in a weak table (an ephemeron table): an entry lives as
; long as its key does, so once the program drops the keys the cache
; empties under memory pressure, with no eviction code. A weak box and a
; finalizer watch one of the keys go.
; test-args: 20000

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
; mode, take the dead keys and their entries with them. The pressure goes
; on until the cache is empty, and for at least as many steps as the first
; argument says (default 0): a benchmark gives every collector mode the
; same work that way, while "until empty" alone would take a generational
; run twice the steps (its dead keys are old: only a full collection
; takes them).
(define args (command-line-args))
(define min-steps (if (pair? args) (string->number (car args)) 0))
(set! keys '())
(define ballast '())
(define most-steps (max min-steps 3000000))
(define (pressure i)
  (cond ((and (>= i min-steps) (= (table-count cache) 0)) i)
        ((= i most-steps) i)
        (else (set! ballast (cons (make-vector 4 i) ballast))
              (pressure (+ i 1)))))
(define steps (pressure 0))
(set! ballast '())
(display "entries after memory pressure: ") (display (table-count cache)) (newline)
(display "emptied without an explicit collection: ") (display (= (table-count cache) 0)) (newline)
(display "the weak box now holds: ") (display (weak-box-value watched)) (newline)
