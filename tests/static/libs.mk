# Extra libraries of the tests in tests/static (tests/module.mk links $(<test>_LIBS)).
test_compose_LIBS := -lyaml
