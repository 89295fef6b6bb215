;; Hash tables, strong and weak. Weak-key, weak-value and doubly weak tables
;; rely on typed objects (the key word left out of the layout bitmap) and
;; disappearing links: entries whose keys die must go after (gc). Guardians
;; rely on finalizers.
(use-modules (ice-9 format))

(define (entries t) (hash-fold (lambda (k v acc) (+ acc 1)) 0 t))

(define strong (make-hash-table))
(do ((i 0 (+ i 1))) ((= i 100000)) (hash-set! strong i (number->string i)))
(format #t "strong: ~a ~a\n" (hash-count (const #t) strong) (hash-ref strong 77777))

(define (fill! t mk)  ; returns every 100th key, kept alive by the caller
  (let loop ((i 0) (kept '()))
    (if (= i 20000)
        kept
        (let ((k (mk i)))
          (hashq-set! t k i)
          (loop (+ i 1) (if (= 0 (modulo i 100)) (cons k kept) kept))))))
(define wk (make-weak-key-hash-table))
(define kept (fill! wk (lambda (i) (list i))))
(define wv (make-weak-value-hash-table))
(do ((i 0 (+ i 1))) ((= i 20000)) (hashv-set! wv i (make-vector 2 i)))
(define wd (make-doubly-weak-hash-table))
(define kept-strings (fill! wd (lambda (i) (string-copy "key"))))
(gc) (gc)
;; The kept keys must survive; a conservative collector may keep a few more.
(format #t "weak key: kept ones all present: ~a, most others gone: ~a\n"
        (and-map (lambda (k) (= (hashq-ref wk k) (car k))) kept)
        (< (entries wk) 2000))
(format #t "weak value: most gone: ~a\n" (< (entries wv) 2000))
(format #t "doubly weak: most gone: ~a\n" (< (entries wd) 2000))

(define g (make-guardian))
(do ((i 0 (+ i 1))) ((= i 1000)) (g (list 'guarded i)))
(gc) (gc)
(let loop ((n 0))
  (let ((x (g)))
    (if x
        (loop (+ n 1))
        (format #t "guardian returned most: ~a\n" (> n 900)))))
