{#- Custom schemas are used as given (staging, marts, snapshots), not prefixed with the target schema;
    var('schema_prefix') prefixes them all, to keep one person's or one test's build apart. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}
    {%- else -%}{{ var('schema_prefix', '') ~ (custom_schema_name | trim) }}{%- endif -%}
{%- endmacro %}
