# Compiles tests/install/plain_consumer.cpp with the plain compiler flags of docs/without_cmake.md
# (no CMake target, no tessel definitions) and runs it with two OpenMP threads.
#   -DCXX_COMPILER -DSOURCE_DIR -DWORK_DIR -DINCLUDES="dir;dir"
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(flags -std=c++20 -O2 -fopenmp -I${SOURCE_DIR}/include)
foreach(dir IN LISTS INCLUDES)
  list(APPEND flags -I${dir})
endforeach()
execute_process(COMMAND ${CXX_COMPILER} ${flags} ${SOURCE_DIR}/tests/install/plain_consumer.cpp -ljpeg -lpng -o ${WORK_DIR}/plain
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "the plain build failed (${rc}):\n${err}")
endif()
set(ENV{OMP_NUM_THREADS} 2)
execute_process(COMMAND ${WORK_DIR}/plain RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc)
  message(FATAL_ERROR "the plain build's program failed (${rc}): ${out}")
endif()
