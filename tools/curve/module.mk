# ncc-curve-keygen: prints a ZeroMQ CURVE keypair in Z85 for the bus's
# NCC_BUS_CURVE_* settings (docs/bus.md "Encryption between machines").
$(eval $(call ncc_program,ncc-curve-keygen,tools/curve/main.c,))
