# Warning flags for tessel's own tests, examples and benches (never imposed on consumers).
function(tessel_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${TESSEL_WERROR}>>:-Werror>)
endfunction()
