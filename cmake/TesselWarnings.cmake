# Flags for tessel's own tests, examples and benches (never imposed on consumers): warnings, and
# by default code generation for this machine's CPU (Eigen's GEMM is 3-4x faster with AVX2/AVX-512
# than with the x86-64 baseline SSE2).
option(TESSEL_NATIVE_ARCH "Build tessel's own programs with -march=native" ON)
function(tessel_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>
    # g++ 12 reports false "may be used uninitialized" inside its own AVX-512 intrinsics when
    # Eigen's GEMM kernels are inlined with -march=native.
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-maybe-uninitialized>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${TESSEL_WERROR}>>:-Werror>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${TESSEL_NATIVE_ARCH}>>:-march=native>)
endfunction()
