# The relay link between spreekd and relay nodes (fuzz_relay_link.c; relay/src/link/link.c).
if(TARGET spk_relay_link)
  spk_add_fuzz(relay_link LIBS spk_relay_link)
endif()
