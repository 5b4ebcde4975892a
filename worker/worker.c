/* Worker layer: models, training loop and the push/pull client. */
