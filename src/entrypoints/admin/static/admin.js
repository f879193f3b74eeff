// Portico admin: the CSRF token (from <meta name="csrf-token">) on every unsafe request
// the panel sends: POST forms get a hidden field, jQuery and fetch requests a header.
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute('content') : '';
  function addField(form) {
    if ((form.getAttribute('method') || 'get').toLowerCase() !== 'post') return;
    if (form.querySelector('input[name="csrf_token"]')) return;
    var input = document.createElement('input');
    input.type = 'hidden';
    input.name = 'csrf_token';
    input.value = token;
    form.appendChild(input);
  }
  document.addEventListener('submit', function (event) { addField(event.target); }, true);
  document.querySelectorAll('form').forEach(addField);
  if (window.jQuery) {
    window.jQuery.ajaxSetup({ headers: { 'X-CSRF-Token': token } });
  }
  var originalFetch = window.fetch;
  window.fetch = function (resource, init) {
    var url = new URL(resource instanceof Request ? resource.url : String(resource), location.href);
    if (url.origin === location.origin) {  // never hand the token to another site
      init = init || {};
      var headers = new Headers(init.headers || {});
      headers.set('X-CSRF-Token', token);
      init.headers = headers;
    }
    return originalFetch.call(this, resource, init);
  };
  // The toasts SQLAdmin shows with an inline script (refused by the panel's CSP).
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('.toast').forEach(function (el) {
      if (window.tabler && window.tabler.bootstrap) {
        new window.tabler.bootstrap.Toast(el, { delay: 3000 }).show();
      }
    });
  });
})();
