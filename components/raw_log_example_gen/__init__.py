"""RawLogExampleGen: Criteo / Avazu / KDD12 / Frappe click logs -> tf.Example splits, with rejected rows kept."""
