;;; ECL on tagheap's libgc: threads (GC_pthread_create, GC_register_my_thread,
;;; threads stopped by signal for each collection) that allocate, share a
;;; locked table and collect, each checking its own data.

(defvar *lock* (mp:make-lock :name "table"))
(defvar *table* (make-hash-table :test 'equal))

(defun worker (id)
  (let ((mine (loop for i below 3000 collect (format nil "w~D-~D" id i))))
    (dotimes (round 60)
      (let ((garbage (make-list 2000 :initial-element round)))
        (declare (ignorable garbage)))
      (mp:with-lock (*lock*)
        (setf (gethash (format nil "~D/~D" id round) *table*) (list id round (copy-seq (nth round mine)))))
      (when (zerop (mod round 20)) (ext:gc t)))
    (loop for s in mine for i from 0 always (string= s (format nil "w~D-~D" id i)))))

(let* ((threads (loop for id below 4 collect (let ((id id)) (mp:process-run-function (format nil "w~D" id) (lambda () (worker id))))))
       (results (mapcar #'mp:process-join threads)))
  (format t "threads: ~A~%" results)
  (format t "table: ~D entries, 3/59 ~A, all intact ~A~%" (hash-table-count *table*) (gethash "3/59" *table*)
          (loop for id below 4 always
                (loop for round below 60 always
                      (equal (gethash (format nil "~D/~D" id round) *table*) (list id round (format nil "w~D-~D" id round)))))))

;; Threads that start and end while collections run.
(let ((sum 0))
  (dotimes (batch 20)
    (let ((threads (loop for i below 4 collect (let ((i i)) (mp:process-run-function "short" (lambda () (reduce #'+ (make-list 1000 :initial-element i))))))))
      (ext:gc nil)
      (incf sum (reduce #'+ (mapcar #'mp:process-join threads)))))
  (format t "short threads: ~D~%" sum))
