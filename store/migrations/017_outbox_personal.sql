-- A message goes to the customer's email address, stored sealed with their key as its body is
-- (store/workflows/outbox.py); '' for an order of a customer who never registered.
ALTER TABLE outbox ADD COLUMN recipient text NOT NULL DEFAULT '';

-- A message whose customer was forgotten before it went out is never sent: not a failure to
-- retry or park, a state of its own.
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('pending', 'sent', 'parked', 'dropped', 'forgotten'));
