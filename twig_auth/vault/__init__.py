"""Secrets held for users: AES-256-GCM under versioned keys (:mod:`.ciphers`, :mod:`.keys`), model fields that
encrypt transparently and bind each ciphertext to its row and org (:mod:`.fields`), re-encryption under the
newest key (:mod:`.rotation`) and masks for display (:mod:`.masking`)."""
