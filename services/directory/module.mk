# ncc-directory: masters: departments (所管課), phone book, categories, users and roles.
$(eval $(call ncc_service,directory))
