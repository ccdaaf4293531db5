/**
 * A form generated from a procedure's params JSON Schema (as zod's toJSONSchema writes it): one input
 * per property of an object schema (text, number, checkbox, select for enums, JSON for anything
 * nested), or one JSON editor when the schema is not a plain object. The server checks the params again.
 */
import { useState } from 'preact/hooks';
import { html } from './ui.js';

/** The first non-null type a property allows. */
function typeOf(schema) {
  if (Array.isArray(schema?.enum)) {
    return 'enum';
  }
  const type = Array.isArray(schema?.type) ? schema.type.find((t) => t !== 'null') : schema?.type;
  if (type) {
    return type;
  }
  const variant = (schema?.anyOf ?? schema?.oneOf ?? []).find((s) => s.type && s.type !== 'null');
  return variant ? typeOf(variant) : 'json';
}

/** Whether the schema is an object with properties a form can show field by field. */
export function isFormable(schema) {
  return typeOf(schema) === 'object' && schema.properties && Object.keys(schema.properties).length > 0;
}

function initialOf(schema) {
  const values = {};
  for (const [key, prop] of Object.entries(schema.properties)) {
    const type = typeOf(prop);
    if (prop.default !== undefined) {
      values[key] =
        type === 'json' || type === 'object' || type === 'array'
          ? JSON.stringify(prop.default)
          : prop.default;
    } else {
      values[key] = type === 'boolean' ? false : '';
    }
  }
  return values;
}

/**
 * Turns the form's values into params; throws an Error naming the field when a value does not parse.
 */
function paramsOf(schema, values) {
  const required = new Set(schema.required ?? []);
  const params = {};
  for (const [key, prop] of Object.entries(schema.properties)) {
    const type = typeOf(prop);
    const raw = values[key];
    if (type === 'boolean') {
      params[key] = Boolean(raw);
      continue;
    }
    if (raw === '' || raw === undefined) {
      if (required.has(key) && prop.default === undefined) {
        throw new Error(`"${key}" is required.`);
      }
      continue;
    }
    if (type === 'number' || type === 'integer') {
      const n = Number(raw);
      if (!Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n))) {
        throw new Error(`"${key}" must be ${type === 'integer' ? 'a whole number' : 'a number'}.`);
      }
      params[key] = n;
    } else if (type === 'enum') {
      params[key] = prop.enum.find((v) => String(v) === String(raw)) ?? raw;
    } else if (type === 'string') {
      params[key] = raw;
    } else {
      try {
        params[key] = JSON.parse(raw);
      } catch {
        throw new Error(`"${key}" must be JSON.`);
      }
    }
  }
  return params;
}

function Field({ name, schema, required, value, onChange, issue }) {
  const type = typeOf(schema);
  const id = `param-${name}`;
  let input;
  if (type === 'boolean') {
    input = html`<input id=${id} name=${name} type="checkbox" checked=${Boolean(value)}
      onChange=${(e) => onChange(e.currentTarget.checked)} />`;
  } else if (type === 'enum') {
    input = html`<select id=${id} name=${name} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${required ? null : html`<option value="">—</option>`}
      ${schema.enum.map((v) => html`<option value=${String(v)}>${String(v)}</option>`)}
    </select>`;
  } else if (type === 'number' || type === 'integer') {
    const max =
      schema.maximum !== undefined && Math.abs(schema.maximum) < Number.MAX_SAFE_INTEGER
        ? schema.maximum
        : undefined;
    const min =
      schema.minimum !== undefined && Math.abs(schema.minimum) < Number.MAX_SAFE_INTEGER
        ? schema.minimum
        : undefined;
    input = html`<input id=${id} name=${name} type="number" step=${type === 'integer' ? 1 : 'any'}
      min=${min} max=${max} value=${value} required=${required && schema.default === undefined}
      onInput=${(e) => onChange(e.currentTarget.value)} />`;
  } else if (type === 'string') {
    input = html`<input id=${id} name=${name} type="text" value=${value}
      minLength=${schema.minLength} maxLength=${schema.maxLength} required=${required && schema.default === undefined}
      placeholder=${schema.format ?? ''} onInput=${(e) => onChange(e.currentTarget.value)} />`;
  } else {
    input = html`<textarea id=${id} name=${name} rows="3" class="mono" placeholder=${type === 'array' ? '[ ]' : '{ }'}
      value=${value} onInput=${(e) => onChange(e.currentTarget.value)}></textarea>`;
  }
  return html`<div class=${`field ${type === 'boolean' ? 'field-check' : ''}`}>
    <label for=${id}>${name}${required ? html`<span class="req" title="required">*</span>` : null}
      <span class="field-type">${type === 'enum' ? 'one of' : type}</span></label>
    ${input}
    ${schema.description ? html`<div class="help">${schema.description}</div>` : null}
    ${issue ? html`<div class="field-issue">${issue}</div>` : null}
  </div>`;
}

/**
 * The params form of `schema`; `onSubmit(params, options)` runs the procedure and may throw an ApiError
 * whose VALIDATION_FAILED issues are shown next to their fields.
 */
export function SchemaForm({ schema, onSubmit, submitLabel = 'Execute' }) {
  const formable = isFormable(schema);
  const [values, setValues] = useState(() => (formable ? initialOf(schema) : {}));
  const [asJson, setAsJson] = useState(!formable);
  const [json, setJson] = useState(() => (formable ? '{}' : 'null'));
  const [options, setOptions] = useState({ name: '', delayMs: '' });
  const [problem, setProblem] = useState();
  const [issues, setIssues] = useState({});
  const [busy, setBusy] = useState(false);

  const switchToJson = () => {
    try {
      setJson(JSON.stringify(paramsOf(schema, values), null, 2));
    } catch {
      setJson('{}');
    }
    setAsJson(true);
  };

  const submit = async (e) => {
    e.preventDefault();
    setProblem(undefined);
    setIssues({});
    let params;
    try {
      params = asJson ? (json.trim() === '' ? undefined : JSON.parse(json)) : paramsOf(schema, values);
    } catch (err) {
      setProblem(err instanceof SyntaxError ? `Params are not JSON: ${err.message}` : err.message);
      return;
    }
    const opts = {};
    if (options.name.trim()) {
      opts.name = options.name.trim();
    }
    if (options.delayMs !== '') {
      opts.delayMs = Number(options.delayMs);
    }
    setBusy(true);
    try {
      await onSubmit(params, opts);
    } catch (err) {
      const byField = {};
      for (const issue of err.details?.issues ?? []) {
        const field = issue.path?.[0] === 'params' ? issue.path[1] : issue.path?.[0];
        if (field !== undefined) {
          byField[field] = issue.message;
        }
      }
      setIssues(byField);
      setProblem(err.message);
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="schema-form" onSubmit=${submit} aria-label="Execute">
    ${
      asJson
        ? html`<div class="field">
          <label for="params-json">params <span class="field-type">JSON</span></label>
          <textarea id="params-json" name="params" rows="8" class="mono" value=${json}
            onInput=${(e) => setJson(e.currentTarget.value)}></textarea>
        </div>`
        : html`<div class="fields">
          ${Object.entries(schema.properties).map(
            ([name, prop]) => html`<${Field} key=${name} name=${name} schema=${prop}
              required=${(schema.required ?? []).includes(name)} value=${values[name]} issue=${issues[name]}
              onChange=${(v) => setValues({ ...values, [name]: v })} />`,
          )}
        </div>`
    }
    <details class="options">
      <summary>Options</summary>
      <div class="fields">
        <div class="field"><label for="opt-name">process name</label>
          <input id="opt-name" type="text" value=${options.name} onInput=${(e) => setOptions({ ...options, name: e.currentTarget.value })} /></div>
        <div class="field"><label for="opt-delay">delay <span class="field-type">ms</span></label>
          <input id="opt-delay" type="number" min="0" step="1" value=${options.delayMs}
            onInput=${(e) => setOptions({ ...options, delayMs: e.currentTarget.value })} /></div>
      </div>
    </details>
    ${problem ? html`<div class="notice notice-error" role="alert">${problem}</div>` : null}
    <div class="form-actions">
      <button class="btn btn-primary" type="submit" disabled=${busy}>${busy ? 'Starting…' : submitLabel}</button>
      ${
        formable
          ? html`<button class="btn btn-ghost" type="button" onClick=${() => (asJson ? setAsJson(false) : switchToJson())}>
            ${asJson ? 'Edit as form' : 'Edit as JSON'}
          </button>`
          : null
      }
    </div>
  </form>`;
}
