# The configuration loader and its table-driven YAML mapper.
recoverd_unit_test(test_cfgmap)
recoverd_unit_test(test_config tests/unit/mutate.c)
# test_config reads the sample files under tests/configs/.
target_compile_definitions(test_config PRIVATE RECOVERD_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
