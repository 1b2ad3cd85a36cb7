import React, { useState } from 'react';

/** A form's submission: `pending` while `action` runs, `onDone` once it
 * succeeded (a failure leaves the form open; the action reports it). */
export function useSubmit(
  action: () => Promise<boolean>,
  onDone: () => void
): { pending: boolean; submit: (event: React.FormEvent) => Promise<void> } {
  const [pending, setPending] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setPending(true);
    const ok = await action();
    setPending(false);
    if (ok) {
      onDone();
    }
  };
  return { pending, submit };
}

/** A form's submit button (its `busyLabel` while pending) and Cancel. */
export function FormButtons(props: {
  submitClass: string;
  label: string;
  busyLabel: string;
  pending: boolean;
  onCancel: () => void;
}): JSX.Element {
  const { submitClass, label, busyLabel, pending, onCancel } = props;
  return (
    <>
      <button
        type="submit"
        className={`jp-Button jp-mod-styled jp-mod-accept ${submitClass}`}
        disabled={pending}
      >
        {pending ? busyLabel : label}
      </button>
      <button
        type="button"
        className="jp-Button jp-mod-styled jp-mod-reject"
        onClick={onCancel}
      >
        Cancel
      </button>
    </>
  );
}
