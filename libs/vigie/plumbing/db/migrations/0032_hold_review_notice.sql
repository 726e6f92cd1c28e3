-- R18 (issue 40): a hold's review date did nothing. The retention service tells it once per stage
-- (a week before, then overdue) as an event; the console shows it on the holds' list.
ALTER TABLE holds ADD COLUMN review_notice text CHECK (review_notice IN ('due_soon', 'overdue'));
