# ncc-gateway: the HTTPS front (civetweb + OpenSSL); see docs/gateway.md.
# The two exported symbols let civetweb 1.15 find OpenSSL 3 (gateway/tls_compat.c).
# gateway/sql/*.sql (the sessions, schema auth) are embedded as ncc_sql_gateway.
GATEWAY_LDFLAGS := -Wl,--export-dynamic-symbol=dlopen \
                   -Wl,--export-dynamic-symbol=SSL_get_peer_certificate
$(eval $(call ncc_embed_sql,gateway,gateway))
$(eval $(call ncc_program,ncc-gateway,$(wildcard gateway/*.c) $(GEN)/sql_gateway.c,$(GATEWAY_LDFLAGS)))
