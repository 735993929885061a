"""What every stage of fer-edge shares, without TensorFlow: the contract between the
stages (`contract`), whole-or-nothing file writes (`files`) and the machine description
that timing reports carry (`machine`)."""
