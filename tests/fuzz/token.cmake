spk_add_fuzz(token LIBS spk_crypto)
