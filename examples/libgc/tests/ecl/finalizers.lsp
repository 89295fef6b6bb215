;;; ECL on tagheap's libgc: finalizers (ext:set-finalizer, through
;;; GC_register_finalizer_no_order and GC_call_with_alloc_lock). Only what
;;; is certain is printed: a finalizer never runs for an object still
;;; referenced, runs at most once, and runs for most dropped objects after a
;;; few collections (both collectors are conservative, so only a share must
;;; go); the objects finalizers hold stay intact. (Weak pointers are not
;;; checked: Debian's ECL 21.2.1 registers no disappearing link for them,
;;; and a dropped target's memory is reused under Debian's libgc too.)
;;; The finalizers count into a vector: counting into a hash table from
;;; finalizers crashed the run on Debian's libgc about one time in twenty
;;; (a SEGMENTATION-VIOLATION, two runs at once on 2 cores).

(defun collect-hard () (dotimes (i 4) (ext:gc t)))

(defvar *finalized* 0)
(defvar *finalized-kept* 0)
(defvar *seen* (make-array 3000 :initial-element 0))  ; runs per object

(let ((kept (loop for i below 500 collect (make-array 10 :initial-element i))))
  (dolist (o kept) (ext:set-finalizer o (lambda (x) (declare (ignore x)) (incf *finalized-kept*))))
  (dotimes (i 3000)
    (let ((id i))
      (ext:set-finalizer (make-array 10 :initial-element i)
                         (lambda (x)
                           (incf (aref *seen* id))
                           ;; The finalized object is intact when its finalizer runs.
                           (when (every (lambda (e) (eql e id)) x) (incf *finalized*))))))
  (collect-hard)
  (dotimes (i 100) (make-list 1000))
  (collect-hard)
  (format t "finalizers: none for kept ~A, most dropped ran on intact objects ~A, none twice ~A, kept intact ~A~%"
          (zerop *finalized-kept*) (> *finalized* 1500) (every (lambda (n) (<= n 1)) *seen*)
          (loop for o in kept for i from 0 always (every (lambda (e) (eql e i)) o)))
  ;; A finalizer removed before the object dies never runs.
  (let ((before *finalized-kept*))
    (dolist (o kept) (ext:set-finalizer o nil))
    (setf kept nil)
    (collect-hard)
    (format t "removed finalizers never ran: ~A~%" (= before *finalized-kept* 0))))

;; Objects a finalizer resurrects into a global list stay usable. (Vectors:
;; an ECL cons is a tagged pointer, and a finalizer on it gets no object
;; bdwgc knows.)
(defvar *resurrected* nil)
(dotimes (i 200)
  (ext:set-finalizer (vector :r i (make-string 20 :initial-element #\r))
                     (lambda (x) (push x *resurrected*))))
(loop repeat 50 until *resurrected* do (collect-hard) (dotimes (i 100) (make-list 1000)))
(format t "resurrected: some ~A, all intact ~A~%" (not (null *resurrected*))
        (every (lambda (x) (and (eq (aref x 0) :r) (string= (aref x 2) (make-string 20 :initial-element #\r))))
               *resurrected*))
