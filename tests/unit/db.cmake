# postgres and redis checks, through their real plug-ins loaded from the
# build directory (they report to the test's check_report through the host
# table), against real servers the tests start from the Debian packages.
foreach(kind postgres redis)
  if(TARGET recoverd-${kind})
    recoverd_unit_test(test_${kind} tests/unit/dbfix.c)
    add_dependencies(test_${kind} recoverd-${kind})
  endif()
endforeach()
