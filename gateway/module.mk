# ncc-gateway: the HTTPS front (civetweb + OpenSSL); see docs/gateway.md.
# The two exported symbols let civetweb 1.15 find OpenSSL 3 (gateway/tls_compat.c).
GATEWAY_LDFLAGS := -Wl,--export-dynamic-symbol=dlopen \
                   -Wl,--export-dynamic-symbol=SSL_get_peer_certificate
$(eval $(call ncc_program,ncc-gateway,$(wildcard gateway/*.c),$(GATEWAY_LDFLAGS)))
