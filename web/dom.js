// Building pages without innerHTML: every text a person or the API supplied goes in as a text
// node, so names in any script (and any markup in them) show exactly as typed.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'testid') {
      element.dataset.testid = value;
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, value);
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

// A labelled form field: <label>Text <input …></label>.
export function field(label, attributes) {
  const tag = attributes.tag || 'input';
  const { tag: _, ...rest } = attributes;
  const control = h(tag, rest);
  return { label: h('label', {}, label, control), control };
}

// A polite live region: screen readers announce what it says.
export function status() {
  const element = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  return {
    element,
    say(text, kind = '') {
      element.className = 'status ' + kind;
      element.textContent = text;
    },
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
