{% snapshot orders_history %}
{{ config(target_schema='snapshots', unique_key='order_id', strategy='timestamp',
          updated_at='updated_at') }}
select order_id, customer, amount, status, updated_at from {{ source('bronze', 'orders') }}
{% endsnapshot %}
