;;; ECL on tagheap's libgc: objects reachable only from ECL's own stacks
;;; (its Lisp value stack, frame stack and binding stack, which ECL pushes
;;; through GC_push_other_roots with GC_push_conditional and
;;; GC_set_mark_bit) while collections run: deep recursion, special
;;; bindings, catch/throw, unwind-protect, conditions and restarts, CLOS.

(defvar *depth-data* nil)

;; Each level binds a special to a fresh list and collects at the bottom:
;; the lists live only in ECL's binding stack.
(defun nest (n)
  (if (zerop n)
      (progn (ext:gc t) 0)
      (let ((*depth-data* (list n (make-string 8 :initial-element #\q) *depth-data*)))
        (+ (first *depth-data*) (nest (1- n)) (length (second *depth-data*))))))
(format t "nest: ~D~%" (nest 2000))

;; Values on the multiple-value and frame stacks across collections.
(defun many-values (n) (values-list (loop for i below n collect (list i (* i i)))))
(let ((vs (multiple-value-list (progn (ext:gc t) (many-values 40)))))
  (ext:gc t)
  (format t "values: ~D, last ~A~%" (length vs) (car (last vs))))

;; catch/throw and unwind-protect through collecting frames.
(defun thrower (n tag)
  (if (zerop n)
      (progn (ext:gc t) (throw tag (list :thrown (make-list 100 :initial-element n))))
      (unwind-protect (thrower (1- n) tag) (push n *depth-data*))))
(let ((result (catch 'here (thrower 300 'here))))
  (format t "throw: ~A ~D, unwound ~D~%" (first result) (length (second result)) (length *depth-data*)))
(setf *depth-data* nil)

;; Conditions with restarts, handlers holding fresh data.
(define-condition odd-number (error) ((n :initarg :n :reader odd-n)))
(defun check-even (n) (if (oddp n) (restart-case (error 'odd-number :n n) (use-value (v) v)) n))
(let ((total 0))
  (dotimes (i 3000)
    (incf total (handler-bind ((odd-number (lambda (c) (invoke-restart 'use-value (* 10 (odd-n c))))))
                  (check-even i)))
    (when (zerop (mod i 500)) (ext:gc t)))
  (format t "restarts: ~D~%" total))
(format t "handler-case: ~A~%"
        (loop for i below 2000 count (handler-case (progn (when (zerop (mod i 3)) (error "e~D" i)) nil)
                                        (simple-error (c) (ext:gc nil) (search "e" (princ-to-string c))))))

;; CLOS: classes, generic functions, method combination, instances kept
;; only in a hash table while collections run.
(defclass shape () ((name :initarg :name :reader name)))
(defclass circle (shape) ((r :initarg :r :reader r)))
(defclass square (shape) ((side :initarg :side :reader side)))
(defgeneric area (s))
(defmethod area ((c circle)) (* 3 (r c) (r c)))
(defmethod area ((s square)) (* (side s) (side s)))
(defmethod area :around ((s shape)) (+ 1 (call-next-method)))
(let ((table (make-hash-table)))
  (dotimes (i 20000)
    (setf (gethash i table) (if (evenp i) (make-instance 'circle :name (format nil "c~D" i) :r i)
                                (make-instance 'square :name (format nil "s~D" i) :side i))))
  (ext:gc t)
  (format t "clos: ~D, ~A ~A~%" (loop for s being the hash-values of table sum (area s))
          (name (gethash 19998 table)) (name (gethash 19999 table))))

;; Closures over closures, and a string stream.
(let* ((adders (loop for i below 500 collect (let ((i i)) (lambda (x) (+ x i)))))
       (composed (reduce (lambda (f g) (lambda (x) (funcall g (funcall f x)))) adders)))
  (ext:gc t)
  (format t "composed: ~D~%" (funcall composed 0)))
(format t "stream: ~D chars~%"
        (length (with-output-to-string (s) (dotimes (i 20000) (format s "~R " (mod i 100))))))
