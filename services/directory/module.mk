# ncc-directory: masters: departments (所管課), phone book, categories, users and roles,
# sign-in (Argon2id passwords, TOTP) and the hash-chained audit log; the record form setting
# (record_form.c). Every services/directory/*.c is built in (the Makefile's wildcard).
directory_LIBS := -largon2
$(eval $(call ncc_service,directory))
