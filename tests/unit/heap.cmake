# lib/heap: built without the sanitizers (add_compile_options puts them on
# every target): ASan replaces malloc, so malloc_trim would have nothing to
# give back, and its shadow memory would drown the RSS the test reads.
add_executable(test_heap tests/unit/test_heap.c src/lib/heap.c)
set_property(TARGET test_heap PROPERTY COMPILE_OPTIONS "")
set_property(TARGET test_heap PROPERTY LINK_OPTIONS "")
target_include_directories(test_heap PRIVATE src tests/unit)
target_link_libraries(test_heap PRIVATE PkgConfig::CMOCKA)
add_test(NAME test_heap COMMAND test_heap)
set_tests_properties(test_heap PROPERTIES TIMEOUT 300)
