# The /api/v1 request mapping of practice systems: route, query, JSON body, Idempotency-Key
# (fuzz_api.c; signaling/src/api.c), and the FHIR Appointment mapping with its instant and
# local-day parsers (fuzz_fhir.c; api_fhir.c, api_time.c).
if(TARGET spk_signaling)
  foreach(t api fhir)
    spk_add_fuzz(${t} LIBS spk_signaling)
    target_include_directories(fuzz_${t}_replay PRIVATE ${CMAKE_SOURCE_DIR}/signaling/src)
    if(SPK_FUZZ)
      target_include_directories(${t}_fuzzer PRIVATE ${CMAKE_SOURCE_DIR}/signaling/src)
    endif()
  endforeach()
endif()
