;;; ECL on tagheap's libgc: lists, vectors, strings, bignums, hash tables,
;;; closures and structures, built and checked across forced collections.
;;; Every value printed is computed, so a lost or overwritten object shows
;;; as a difference from the run on Debian's libgc.

(defun build-list (n) (loop for i below n collect (cons i (format nil "item-~D" i))))

(defun check-list (l n)
  (and (= (length l) n)
       (loop for (i . s) in l for j from 0
             always (and (= i j) (string= s (format nil "item-~D" j))))))

(defstruct point x y (tag "" :type string))

(defun make-counter ()
  (let ((count 0)) (lambda () (incf count))))

;; Lists kept only from the Lisp stack and a special binding while garbage
;; piles up and collections run.
(defvar *kept* nil)
(let ((lists (loop for k below 20 collect (build-list 2000))))
  (let ((*kept* (build-list 5000)))
    (dotimes (round 200)
      (make-array 5000 :initial-element round)  ; garbage
      (when (zerop (mod round 10)) (ext:gc t)))
    (format t "kept ~A, lists ~A~%" (check-list *kept* 5000)
            (every (lambda (l) (check-list l 2000)) lists))))

;; Bignums (GMP limbs in the collector's heap) and rationals.
(let ((f 1)) (loop for i from 1 to 500 do (setf f (* f i)))
  (ext:gc t)
  (format t "500! has ~D digits, mod 1000003 = ~D~%" (length (princ-to-string f)) (mod f 1000003)))
(format t "sum of 1/k for k to 200: ~A~%" (loop for k from 1 to 200 sum (/ 1 k)))

;; Strings: build, concatenate, search, across collections.
(let ((parts (loop for i below 3000 collect (make-string (1+ (mod i 17)) :initial-element (code-char (+ 97 (mod i 26)))))))
  (ext:gc t)
  (let ((all (apply #'concatenate 'string parts)))
    (format t "string length ~D, ~D x's, first z at ~D~%" (length all) (count #\x all) (position #\z all))))

;; Hash tables of every test, grown and shrunk.
(let ((eq-table (make-hash-table :test 'eq))
      (equal-table (make-hash-table :test 'equal))
      (keys (loop for i below 20000 collect (format nil "key~D" i))))
  (loop for k in keys for i from 0 do (setf (gethash k equal-table) i (gethash (intern k "KEYWORD") eq-table) (* 2 i)))
  (ext:gc t)
  (loop for k in keys for i from 0 when (oddp i) do (remhash k equal-table))
  (ext:gc t)
  (format t "equal ~D entries, key500 ~A key501 ~A; eq ~D entries, key777 ~A~%"
          (hash-table-count equal-table) (gethash "key500" equal-table) (gethash "key501" equal-table)
          (hash-table-count eq-table) (gethash :|key777| eq-table)))

;; Closures and structures.
(let ((counters (loop for i below 1000 collect (make-counter)))
      (points (loop for i below 10000 collect (make-point :x i :y (* i i) :tag (format nil "p~D" i)))))
  (dotimes (k 50) (mapc #'funcall counters) (when (zerop (mod k 7)) (ext:gc t)))
  (format t "counters at ~D, point 9999: ~D ~D ~A~%" (funcall (first counters))
          (point-x (car (last points))) (point-y (car (last points))) (point-tag (car (last points)))))

;; Vectors and sorting.
(let ((v (make-array 100000)))
  (dotimes (i 100000) (setf (aref v i) (list (mod (* i 7919) 100003) i)))
  (ext:gc t)
  (setf v (sort v #'< :key #'first))
  (format t "sorted: first ~A last ~A~%" (aref v 0) (aref v 99999)))
