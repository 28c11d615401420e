# Shared by run_corpus.cmake and run_evaluate_corpus.cmake (cmake -P scripts): writing the
# bad-input corpus and the rule for a refused run.

# Writes the corpus with GENERATOR into `dir` and sets corpus_names to its files (only those in
# FILES when that is given); TIMEOUT defaults to 60 seconds.
macro(corpus_write dir)
  execute_process(COMMAND ${GENERATOR} ${dir} RESULT_VARIABLE _rc OUTPUT_VARIABLE _manifest ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "writing the corpus failed (${_rc}): ${_err}")
  endif()
  string(REPLACE "\n" ";" _lines "${_manifest}")
  set(corpus_names "")
  foreach(_line IN LISTS _lines)
    if(_line STREQUAL "")
      continue()
    endif()
    string(REPLACE " " ";" _fields "${_line}")
    list(GET _fields 0 _name)
    if(FILES AND NOT _name IN_LIST FILES)
      continue()
    endif()
    list(APPEND corpus_names ${_name})
  endforeach()
  if(NOT TIMEOUT)
    set(TIMEOUT 60)
  endif()
endmacro()

# A run that exited with rc != 0 must have printed exactly one line on stderr and left no
# `leftover` file; sets refusal_line to that line.
function(corpus_expect_refusal label rc serr leftover)
  string(STRIP "${serr}" stripped)
  string(FIND "${stripped}" "\n" nl)
  if(stripped STREQUAL "" OR NOT nl EQUAL -1)
    message(FATAL_ERROR "${label}: exit ${rc}, expected exactly one line on stderr, got:\n${serr}")
  endif()
  if(EXISTS ${leftover})
    message(FATAL_ERROR "${label}: exit ${rc} but a partial output was left: ${leftover}")
  endif()
  set(refusal_line "${stripped}" PARENT_SCOPE)
endfunction()
