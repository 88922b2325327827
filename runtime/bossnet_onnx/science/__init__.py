"""The science: the family members and their facts (members), preprocessing (preprocess,
member_inputs), Monte-Carlo uncertainties (uncertainty), DR19 flags (flags), catalogue column
meanings (columns), air/vacuum wavelengths (units) and synthetic spectra with known labels
(synthetic). Pure numpy: no file or network access."""
