"""The web dashboard at /ui/, served by the hub's own API app with the API's tokens, roles and policy.

Layout, for whoever adds a page:
- dashboard.py composes the router the app includes; a page is an APIRouter module with plain endpoint
  functions (overview.py, cases.py) that take what they need through dependencies (context.py and the
  API's api/context.py), added there and given an entry in api/access.yaml;
- session.py seals the login session in a cookie and checks CSRF tokens; api/security.py accepts that
  cookie as credentials, so every /ui route is guarded by the same policy as the API;
- render.py renders templates/ (Jinja2, Chinese labels from labels.py and stage names from
  workflow/stages.yaml); assets.py serves static/ and the charting library `make install` copies into
  static/vendor/, and the CJK font of the PDF's font package: nothing is loaded from elsewhere.
A page reads its data through the functions behind the matching API route, masks personal data unless the
caller holds pii:read, and audits an unmasked read as that route does.
"""
