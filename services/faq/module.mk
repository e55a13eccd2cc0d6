# ncc-faq: operator and public FAQ, Japanese search, versions and approval.
$(eval $(call ncc_service,faq))
