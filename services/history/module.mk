# ncc-history: interaction records (応対履歴): search, export, retention.
$(eval $(call ncc_service,history))
