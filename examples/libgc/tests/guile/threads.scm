;; Guile threads allocating at once: each registers with the collector
;; (GC_register_my_thread) and is stopped by signal for every collection,
;; wherever it is. Results are checked, then printed in a fixed order.
(use-modules (ice-9 threads) (ice-9 format) (srfi srfi-1))

(define (work seed)
  (let loop ((round 0) (ok #t))
    (if (= round 40)
        ok
        (let* ((lst (map (lambda (i) (cons seed i)) (iota 5000)))
               (v (list->vector lst))
               (s (apply string-append (map (lambda (p) (number->string (cdr p))) (take lst 300)))))
          (loop (+ round 1)
                (and ok
                     (= (vector-length v) 5000)
                     (equal? (vector-ref v 4999) (cons seed 4999))
                     (= (string-length s) 790)))))))

(define threads (map (lambda (i) (call-with-new-thread (lambda () (work i)))) (iota 4)))
(define main-ok (work 99))
(format #t "threads: ~a, main: ~a\n" (map join-thread threads) main-ok)
(format #t "par-map: ~a\n" (par-map (lambda (x) (length (iota (* 1000 x)))) (iota 8)))
(define m (make-mutex))
(define counter 0)
(for-each join-thread
          (map (lambda (i)
                 (call-with-new-thread
                  (lambda ()
                    (do ((j 0 (+ j 1))) ((= j 2000))
                      (with-mutex m (set! counter (+ counter 1)))
                      (make-list 20 j)))))
               (iota 4)))
(format #t "mutex counter: ~a\n" counter)
