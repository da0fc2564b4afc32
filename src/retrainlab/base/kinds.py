"""The kinds of change between the old and the new data, by name.

`retrainlab.decision.change` reads which kinds the evidence shows; each strategy's
declaration says which kinds it usually suits (`Strategy.suits`), and the change check
derives from those declarations which options a kind favours.
"""

NEW_CLASSES, CONCEPT_DRIFT, COVARIATE_SHIFT = "new classes", "concept drift", "covariate shift"
LABEL_SHIFT, MORE_OF_THE_SAME, NOTHING = "label shift", "more of the same", "nothing material"
NEW_VOCABULARY = "new vocabulary"  # a text column's new texts use words the old ones did not
NEW_CATEGORIES = "new categories"  # a categorical column's new rows hold values the old ones did not

# The kinds whose usual answer is a set of options. Concept drift has none: the option that
# learns the new rule best is measured (its accuracy on the new data), not declared.
DECLARED = (NEW_CLASSES, NEW_VOCABULARY, NEW_CATEGORIES, COVARIATE_SHIFT, LABEL_SHIFT, MORE_OF_THE_SAME, NOTHING)
