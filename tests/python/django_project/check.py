"""Django against Cairn: `migrate` of the built-in apps and of `shop` (foreign key, unique,
index), the ORM, then `migrate shop zero`. Run from tests/python/clients.py."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from decimal import Decimal  # noqa: E402

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import IntegrityError, connection, transaction  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402

from shop.models import Customer, Order  # noqa: E402

call_command("migrate", "shop", "zero", verbosity=0)
call_command("migrate", verbosity=0)
tables = set(connection.introspection.table_names())
assert {"auth_user", "django_content_type", "django_session", "shop_customer", "shop_order"} <= tables

ada = Customer.objects.create(name="Ada")
bob = Customer.objects.create(name="Bob")
Order.objects.bulk_create([Order(customer=ada, total=Decimal("10.50")),
                           Order(customer=ada, total=Decimal("4.50")),
                           Order(customer=bob, total=Decimal("7.00"))])
totals = {c.name: (c.n, c.s) for c in Customer.objects.annotate(n=Count("orders"), s=Sum("orders__total"))}
assert totals == {"Ada": (2, Decimal("15.00")), "Bob": (1, Decimal("7.00"))}, totals
assert list(Order.objects.filter(customer__name="Bob").values_list("total", flat=True)) == [Decimal("7.00")]
try:
    with transaction.atomic():
        Customer.objects.create(name="Ada")
    raise AssertionError("duplicate accepted")
except IntegrityError:
    pass
ada.delete()  # the cascade in Django, then the row
assert Order.objects.count() == 1
User.objects.filter(username="carol").delete()
User.objects.create_user("carol", password="secret")
assert User.objects.get(username="carol").check_password("secret")
call_command("migrate", "shop", "zero", verbosity=0)
assert "shop_order" not in connection.introspection.table_names()
print("django: ok")
