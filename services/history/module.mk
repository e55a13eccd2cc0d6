# ncc-history: interaction records (応対履歴): search, export, retention (docs/history.md).
# Every services/history/*.c is built in (the Makefile's wildcard); utf8proc normalises
# the text of the search index (search.c).
history_LIBS := -lutf8proc
$(eval $(call ncc_service,history))
