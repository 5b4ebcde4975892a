# Configures a build with ASan and UBSan in BUILD_DIR and builds TARGETS (the fuzz replay
# programs) there; run by the test suite's fixture with cmake -P. Fails when either step fails.
# Variables: SOURCE_DIR, BUILD_DIR, C_COMPILER, TARGETS (a ;-list).
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BUILD_DIR} -DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DCMAKE_C_COMPILER=${C_COMPILER} -DPST_SANITIZE=ON -DPST_FUZZ_SANITIZED_REPLAY=OFF
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sanitized build: configuring ${BUILD_DIR} failed (${rc})")
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} -j 2 --target ${TARGETS}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sanitized build: building the replays failed (${rc}):\n${out}")
endif()
