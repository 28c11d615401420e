# Flags for tessel's own tests, examples and benches (never imposed on consumers): warnings, and
# by default code generation for this machine's CPU (Eigen's GEMM is 3-4x faster with AVX2/AVX-512
# than with the x86-64 baseline SSE2, and tessel's own kernels take their vector width and register
# blocking from the target, see include/tessel/core/simd.hpp).
#   TESSEL_MARCH       the -march value, e.g. native, x86-64-v3 (AVX2 + FMA), x86-64 (SSE2);
#                      empty or OFF: no -march flag (the compiler's default target).
#   TESSEL_NATIVE_ARCH kept for existing build folders: OFF means no -march flag, whatever
#                      TESSEL_MARCH says.
#   TESSEL_OPTIMIZE    an optimisation flag that overrides the build type's (e.g. -O2); empty: the
#                      build type's own (Release: -O3). CI builds at -O2, which compiles about a
#                      quarter faster than -O3 (docs/reliability.md).
option(TESSEL_NATIVE_ARCH "Pass -march=TESSEL_MARCH to tessel's own programs (OFF: no -march flag)" ON)
set(TESSEL_MARCH "native" CACHE STRING "-march for tessel's own programs (empty or OFF: the compiler's default)")
set(TESSEL_OPTIMIZE "" CACHE STRING "Optimisation flag for tessel's own programs, overriding the build type's (empty: the build type's)")
if(TESSEL_OPTIMIZE AND NOT TESSEL_OPTIMIZE MATCHES "^-O([0-3]|s|fast|g)$")
  message(FATAL_ERROR "TESSEL_OPTIMIZE='${TESSEL_OPTIMIZE}': expected one of -O0, -O1, -O2, -O3, -Os, -Og, -Ofast, or empty")
endif()
set(_tessel_march "")
if(TESSEL_NATIVE_ARCH AND TESSEL_MARCH)
  set(_tessel_march "${TESSEL_MARCH}")
endif()
function(tessel_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>
    # g++ 12 reports false "may be used uninitialized" inside its own AVX-512 intrinsics when
    # Eigen's GEMM kernels are inlined with -march=native.
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-maybe-uninitialized>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${TESSEL_WERROR}>>:-Werror>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${_tessel_march}>>:-march=${_tessel_march}>
    # After the build type's flags on the command line, so this one wins.
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${TESSEL_OPTIMIZE}>>:${TESSEL_OPTIMIZE}>)
endfunction()
