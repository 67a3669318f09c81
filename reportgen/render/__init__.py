"""Rendering: the Report laid out three ways, from one Jinja2 environment.

    environment   the Jinja2 environment, ``Assets`` (what a template gets besides the Report)
                  and ``render_template`` (a user template's failure is a ConfigError)
    charts        the Altair chart builders (report data in, Vega-Lite spec out)
    vega          vl-convert: specs to SVG / PNG, and the Vega JavaScript bundle the HTML
                  inlines (``vega_bundle``, cached on disk); imports neither Altair nor pandas
    html          report.html: interactive and offline
    pdf           report.pdf: charts exported up front as data: URIs, WeasyPrint, no network
    email         email.html / email.txt and their PNG charts
    branding      the logo as a data: URI and the ink that reads on the brand colour

Every function here is a plain function of the Report (and the user's template folder); none
writes a file: ``output`` does.
"""
